//go:build unix

package agent

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Server is the agent's SSH server. It is shaped like net/http: one handler
// runs each session, and maps of channel, request and subsystem handlers add
// sftp and forwarding.
type Server struct {
	cfg       *Config
	log       *slog.Logger
	env       []string // base environment of sessions
	srv       *ssh.Server
	hangup    time.Duration // SIGHUP → SIGKILL for a closed session's processes
	drain     time.Duration // how long output may trail the session's exit
	closeMu   sync.Mutex
	closing   bool
	listeners []net.Listener
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup // tracked connections and session handlers
}

// NewServer loads the host key and prepares a server for cfg.
func NewServer(cfg *Config, log *slog.Logger) (*Server, error) {
	pem, err := os.ReadFile(cfg.SSH.HostKey)
	if err != nil {
		return nil, fmt.Errorf("ssh host key: %w", err)
	}
	signer, err := gossh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("ssh host key %s: %w", cfg.SSH.HostKey, err)
	}
	if _, err := os.Stat(cfg.SSH.AuthorizedKeys); err != nil {
		// Not fatal: the file is re-read on every login and may appear later.
		log.Warn("authorized keys not readable yet", "err", err)
	}

	signer, err = modernHostSigner(signer)
	if err != nil {
		return nil, fmt.Errorf("ssh host key %s: %w", cfg.SSH.HostKey, err)
	}

	s := &Server{
		cfg:    cfg,
		log:    log,
		env:    baseEnv(cfg),
		hangup: 2 * time.Second,
		drain:  time.Second,
		conns:  map[net.Conn]struct{}{},
	}
	forwarded := &ssh.ForwardedTCPHandler{}
	s.srv = &ssh.Server{
		Handler:          s.handleSession,
		HostSigners:      []ssh.Signer{signer},
		Version:          "envd-agent",
		PublicKeyHandler: s.authorize,
		// No password or keyboard-interactive handler: only keys are offered.
		ServerConfigCallback:          func(ssh.Context) *gossh.ServerConfig { return modernConfig() },
		ConnCallback:                  s.trackConn,
		LocalPortForwardingCallback:   s.allowLocalForward,
		ReversePortForwardingCallback: s.allowReverseForward,
		ChannelHandlers: map[string]ssh.ChannelHandler{
			"session":      s.sessionChannel,
			"direct-tcpip": ssh.DirectTCPIPHandler,
		},
		RequestHandlers: map[string]ssh.RequestHandler{
			"tcpip-forward":        forwarded.HandleSSHRequest,
			"cancel-tcpip-forward": forwarded.HandleSSHRequest,
		},
		SubsystemHandlers: map[string]ssh.SubsystemHandler{
			"sftp": s.handleSFTP,
		},
	}
	return s, nil
}

// Serve accepts connections on ln until Close; it then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	s.closeMu.Lock()
	if s.closing {
		s.closeMu.Unlock()
		return ln.Close()
	}
	s.listeners = append(s.listeners, ln)
	s.closeMu.Unlock()

	s.log.Info("ssh server listening", "addr", ln.Addr().String())
	err := s.srv.Serve(ln)
	s.closeMu.Lock()
	closing := s.closing
	s.closeMu.Unlock()
	if closing {
		return nil
	}
	return err
}

// Close stops accepting, closes every connection (which ends their sessions
// and kills the sessions' processes) and waits for the session handlers.
func (s *Server) Close() error {
	s.closeMu.Lock()
	s.closing = true
	s.closeMu.Unlock()

	err := s.srv.Close()
	// Also a listener Serve has not handed to the ssh package yet, and the
	// connections still in their handshake, which it does not know about.
	s.closeMu.Lock()
	for _, ln := range s.listeners {
		_ = ln.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.closeMu.Unlock()
	s.wg.Wait()
	return err
}

// track counts a connection or session handler for Close, unless closing.
func (s *Server) track() bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) trackConn(_ ssh.Context, c net.Conn) net.Conn {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closing {
		return nil // the ssh package closes it
	}
	s.wg.Add(1)
	s.conns[c] = struct{}{}
	return &trackedConn{Conn: c, untrack: func() {
		s.closeMu.Lock()
		delete(s.conns, c)
		s.closeMu.Unlock()
		s.wg.Done()
	}}
}

// trackedConn untracks itself on its first Close.
type trackedConn struct {
	net.Conn
	once    sync.Once
	untrack func()
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.untrack)
	return err
}

// authorize accepts the environment's user with a key listed in the
// authorized_keys file, read afresh so that keys can be rotated without
// restarting the container.
func (s *Server) authorize(ctx ssh.Context, key ssh.PublicKey) bool {
	if want := s.cfg.LoginUser(); ctx.User() != want {
		s.log.Info("ssh auth: user refused", "user", ctx.User(), "want", want, "remote", ctx.RemoteAddr().String())
		return false
	}
	keys, err := readAuthorizedKeys(s.cfg.SSH.AuthorizedKeys)
	if err != nil {
		s.log.Warn("ssh auth: cannot read authorized keys", "err", err)
		return false
	}
	for _, k := range keys {
		if ssh.KeysEqual(k, key) {
			return true
		}
	}
	s.log.Info("ssh auth: key not authorized", "user", ctx.User(), "remote", ctx.RemoteAddr().String(),
		"key", gossh.FingerprintSHA256(key))
	return false
}

// LoginUser is the only user name sshd accepts: the configured account
// when the agent starts as root and switches to it (root stays root), else
// the account the agent runs as.
func (c *Config) LoginUser() string {
	if c.User != nil && (os.Getuid() == 0 || os.Getuid() == c.User.UID) {
		return c.User.Name
	}
	name, _ := identity()
	return name
}

func readAuthorizedKeys(path string) ([]gossh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys []gossh.PublicKey
	for len(data) > 0 {
		key, _, _, rest, err := gossh.ParseAuthorizedKey(data)
		if err != nil {
			break // no more keys; unparsable lines are skipped by the parser
		}
		keys = append(keys, key)
		data = rest
	}
	return keys, nil
}

// Algorithms the server offers: no SHA-1 anywhere (no
// diffie-hellman-group*-sha1, no hmac-sha1, no ssh-rsa signatures) and no
// CBC or RC4 ciphers. Every OpenSSH since 7.8 (2018) and VS Code's client
// speak these.
var (
	modernKeyExchanges = []string{
		gossh.KeyExchangeMLKEM768X25519, gossh.KeyExchangeCurve25519,
		gossh.KeyExchangeECDHP256, gossh.KeyExchangeECDHP384, gossh.KeyExchangeECDHP521,
	}
	modernCiphers = []string{
		gossh.CipherChaCha20Poly1305, gossh.CipherAES256GCM, gossh.CipherAES128GCM,
		gossh.CipherAES256CTR, gossh.CipherAES192CTR, gossh.CipherAES128CTR,
	}
	modernMACs = []string{ // used with the CTR ciphers only; AEAD ciphers have none
		gossh.HMACSHA256ETM, gossh.HMACSHA512ETM, gossh.HMACSHA256, gossh.HMACSHA512,
	}
	modernPublicKeyAlgos = []string{
		gossh.KeyAlgoED25519, gossh.KeyAlgoSKED25519,
		gossh.KeyAlgoECDSA256, gossh.KeyAlgoECDSA384, gossh.KeyAlgoECDSA521, gossh.KeyAlgoSKECDSA256,
		gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256,
	}
)

func modernConfig() *gossh.ServerConfig {
	c := &gossh.ServerConfig{PublicKeyAuthAlgorithms: modernPublicKeyAlgos}
	c.KeyExchanges, c.Ciphers, c.MACs = modernKeyExchanges, modernCiphers, modernMACs
	return c
}

// modernHostSigner keeps an RSA host key from signing with SHA-1 (ssh-rsa);
// other key types have one signature algorithm each.
func modernHostSigner(s gossh.Signer) (gossh.Signer, error) {
	if s.PublicKey().Type() != gossh.KeyAlgoRSA {
		return s, nil
	}
	as, ok := s.(gossh.AlgorithmSigner)
	if !ok {
		return nil, fmt.Errorf("RSA host key cannot sign with SHA-2")
	}
	return gossh.NewSignerWithAlgorithms(as, []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256})
}
