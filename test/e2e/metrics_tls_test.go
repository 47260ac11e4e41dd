package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// testCA is a throwaway certificate authority for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "skbtrail e2e CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate and key signed by ca, in PEM, for a server
// at ip (usage server) or for a client (ip nil).
func (ca *testCA) issue(t *testing.T, serial int64, ip net.IP) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: fmt.Sprintf("skbtrail e2e %d", serial)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// nsClient is an HTTP client whose connections are made from inside
// namespace ns.
func nsClient(t *testing.T, ns string, tlsConf *tls.Config) *http.Client {
	return &http.Client{
		Timeout: scaled(5 * time.Second),
		Transport: &http.Transport{
			TLSClientConfig:   tlsConf,
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
				err = inNetns(t, ns, func() (err error) {
					c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
		},
	}
}

// get fetches url with c (basic auth user:pass if user is not "") and
// returns the status code and body.
func get(c *http.Client, url, user, pass string) (int, string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// The metrics endpoint locked down with --web-config: a scrape over TLS
// with a client certificate and the right password works; a plain HTTP
// scrape, a wrong password, no password and no client certificate are
// refused; and only /metrics is served.
func TestMetricsTLSBasicAuth(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	dir := t.TempDir()
	ca := newTestCA(t)
	srvCert, srvKey := ca.issue(t, 2, net.ParseIP("127.0.0.1"))
	cliCert, cliKey := ca.issue(t, 3, nil)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"ca.pem": ca.pem, "server.pem": srvCert, "server.key": srvKey,
		"web.yml": []byte(fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: %s
basic_auth_users:
  prometheus: %s
`, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.pem"), hash)),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const addr = "127.0.0.1:9464" // B's own loopback
	tr := runIn(t, p.B, "drops", "--interval", "300ms", "--netns", p.B, "--metrics", addr, "--web-config", filepath.Join(dir, "web.yml"))

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	pair, err := tls.X509KeyPair(cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	good := nsClient(t, p.B, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}})
	url := "https://" + addr + "/metrics"

	// Over TLS, with the client certificate and the password: the metrics.
	var body string
	waitFor(t, 10*time.Second, "a scrape over TLS with basic auth", func() (bool, string) {
		code, b, err := get(good, url, "prometheus", "s3cret")
		body = b
		if err != nil {
			return false, err.Error()
		}
		return code == 200 && strings.Contains(b, "skbtrail_attached_probes"), fmt.Sprintf("status %d:\n%s", code, b)
	})
	if _, ok := metricValue(body, "skbtrail_map_keys_max", nil); !ok {
		t.Errorf("no skbtrail_map_keys_max in the TLS scrape:\n%s", body)
	}
	// Wrong password, no password: 401.
	for _, c := range []struct{ user, pass string }{{"prometheus", "wrong"}, {"", ""}, {"other", "s3cret"}} {
		code, b, err := get(good, url, c.user, c.pass)
		if err != nil || code != http.StatusUnauthorized {
			t.Errorf("scrape as %q/%q: status %d, err %v, want 401 Unauthorized:\n%s", c.user, c.pass, code, err, tail(b, 5, 500))
		}
	}
	// Only /metrics.
	for _, path := range []string{"/", "/debug/pprof/", "/metrics/x", "/favicon.ico"} {
		code, _, err := get(good, "https://"+addr+path, "prometheus", "s3cret")
		if err != nil || code != http.StatusNotFound {
			t.Errorf("GET %s (authenticated): status %d, err %v, want 404", path, code, err)
		}
	}
	// Plain HTTP: no metrics.
	code, b, err := get(nsClient(t, p.B, nil), "http://"+addr+"/metrics", "prometheus", "s3cret")
	if err == nil && (code == 200 || strings.Contains(b, "skbtrail_")) {
		t.Errorf("a plain HTTP scrape got status %d:\n%s", code, tail(b, 5, 500))
	}
	// TLS without a client certificate: the handshake fails.
	code, b, err = get(nsClient(t, p.B, &tls.Config{RootCAs: pool}), url, "prometheus", "s3cret")
	if err == nil {
		t.Errorf("a scrape without a client certificate got status %d, want a failed handshake:\n%s", code, tail(b, 5, 500))
	}

	tr.signal(syscall.SIGINT)
	_, stderr := tr.waitOK(exitWithin)
	if strings.Contains(stderr, "metrics endpoint stopped") {
		t.Errorf("the endpoint stopped during the run:\n%s", stderr)
	}
}

// A web config that cannot be used is bad input: one line, status 2,
// before anything is attached.
func TestMetricsBadWebConfig(t *testing.T) {
	needBinary(t)
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(bad, []byte("tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: /nonexistent.key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"drops", "--metrics", "127.0.0.1:0", "--web-config", bad},
		{"drops", "--metrics", "127.0.0.1:0", "--web-config", filepath.Join(dir, "missing.yml")},
		{"drops", "--web-config", bad},
	} {
		stdout, stderr, code := runOnce(t, args...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "--web-config") || stdout != "" {
			t.Errorf("skbtrail %s: status %d, want 2 and one line naming --web-config:\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}
