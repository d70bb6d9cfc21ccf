package up

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/berthdev/berth/internal/agentidentity"
)

// Identities of the clients `up` gives certificates to. The apiserver takes the
// user from the certificate's CN and the groups from its O.
const (
	AdminUser = "berth-admin"
	// ManagerUser is bound to the generated berth-manager ClusterRole.
	ManagerUser = "berth-manager"
	// AgentGroup holds every agent's user (AgentUserPrefix + instance name); each
	// user is bound to the generated berth-agent ClusterRole.
	AgentGroup      = agentidentity.Group
	AgentUserPrefix = agentidentity.UserPrefix
)

// Lifetimes: the CA outlives many runs; leaf certificates are renewed by the `up`
// that finds them within a month of expiry.
const (
	caLifetime    = 10 * 365 * 24 * time.Hour
	leafLifetime  = 365 * 24 * time.Hour
	renewalWindow = 30 * 24 * time.Hour
)

// keyPair is a certificate with its private key.
type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// pki issues the certificates of one state directory, under its own CA.
type pki struct {
	l  layout
	ca keyPair
}

// loadOrCreatePKI loads the CA of the state directory, creating it on first use.
func loadOrCreatePKI(l layout) (*pki, error) {
	p := &pki{l: l}
	ca, err := loadKeyPair(l.pki("ca.crt"), l.pki("ca.key"))
	if err == nil && time.Until(ca.cert.NotAfter) > renewalWindow {
		p.ca = ca
		return p, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "berth-up-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if p.ca, err = sign(tmpl, key, nil); err != nil {
		return nil, err
	}
	if err := writeKeyPair(p.ca, l.pki("ca.crt"), l.pki("ca.key")); err != nil {
		return nil, err
	}
	return p, nil
}

// serving returns the apiserver's serving pair for 127.0.0.1 and localhost,
// issued again when missing, not from this CA or close to expiry.
func (p *pki) serving() (certFile, keyFile string, err error) {
	certFile, keyFile = p.l.pki("apiserver.crt"), p.l.pki("apiserver.key")
	return certFile, keyFile, p.ensure(certFile, keyFile, func() *x509.Certificate {
		return &x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver"},
			DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
	})
}

// gatewayServing returns the directory of the manager's gateway serving pair
// (tls.crt and tls.key, as --gateway-cert-dir reads them) for 127.0.0.1 and
// localhost; agents check it against the CA.
func (p *pki) gatewayServing() (dir string, err error) {
	dir = p.l.pki("gateway")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, p.ensure(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), func() *x509.Certificate {
		return &x509.Certificate{
			Subject:     pkix.Name{CommonName: "berth-manager-gateway"},
			DNSNames:    []string{"localhost"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
	})
}

// client returns a client pair for user in groups, stored as <file>.crt/.key.
func (p *pki) client(file, user string, groups ...string) (certFile, keyFile string, err error) {
	certFile, keyFile = p.l.pki(file+".crt"), p.l.pki(file+".key")
	return certFile, keyFile, p.ensure(certFile, keyFile, func() *x509.Certificate {
		return &x509.Certificate{
			Subject:     pkix.Name{CommonName: user, Organization: groups},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
	})
}

// serviceAccountKey returns the key the apiserver signs service-account tokens
// with and its public half, which it checks them against; created on first use.
func (p *pki) serviceAccountKey() (keyFile, pubFile string, err error) {
	keyFile, pubFile = p.l.pki("sa.key"), p.l.pki("sa.pub")
	if _, err := os.Stat(pubFile); err == nil {
		return keyFile, pubFile, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", "", err
	}
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	return keyFile, pubFile, writeFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// ensure issues tmpl() into certFile/keyFile unless a valid pair from this CA is
// there already; a wanted subject is also compared, so a changed identity is
// reissued.
func (p *pki) ensure(certFile, keyFile string, tmpl func() *x509.Certificate) error {
	want := tmpl()
	if have, err := loadKeyPair(certFile, keyFile); err == nil &&
		have.cert.CheckSignatureFrom(p.ca.cert) == nil &&
		time.Until(have.cert.NotAfter) > renewalWindow &&
		have.cert.Subject.String() == want.Subject.String() {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	want.NotBefore = time.Now().Add(-time.Hour)
	want.NotAfter = time.Now().Add(leafLifetime)
	want.KeyUsage = x509.KeyUsageDigitalSignature
	kp, err := sign(want, key, &p.ca)
	if err != nil {
		return err
	}
	return writeKeyPair(kp, certFile, keyFile)
}

// sign makes the certificate of tmpl for key, signed by parent (self-signed when
// nil).
func sign(tmpl *x509.Certificate, key crypto.Signer, parent *keyPair) (keyPair, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return keyPair{}, err
	}
	tmpl.SerialNumber = serial
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		return keyPair{}, fmt.Errorf("signing %s: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{cert: cert, key: key}, nil
}

func loadKeyPair(certFile, keyFile string) (keyPair, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return keyPair{}, err
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return keyPair{}, err
	}
	cblock, _ := pem.Decode(cb)
	kblock, _ := pem.Decode(kb)
	if cblock == nil || kblock == nil {
		return keyPair{}, errors.New("not PEM")
	}
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		return keyPair{}, err
	}
	key, err := x509.ParsePKCS8PrivateKey(kblock.Bytes)
	if err != nil {
		return keyPair{}, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return keyPair{}, errors.New("key cannot sign")
	}
	return keyPair{cert: cert, key: signer}, nil
}

func writeKeyPair(kp keyPair, certFile, keyFile string) error {
	der, err := x509.MarshalPKCS8PrivateKey(kp.key)
	if err != nil {
		return err
	}
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return writeFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.cert.Raw}), 0o644)
}

// writeFile replaces path atomically, so a crash never leaves half a key.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// writeKubeconfig writes a kubeconfig for server with the client pair, naming
// the files (not embedding them) so renewed certificates are picked up.
func writeKubeconfig(path, server, caFile, certFile, keyFile, user string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["berth-up"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: caFile}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile}
	cfg.Contexts["berth-up"] = &clientcmdapi.Context{Cluster: "berth-up", AuthInfo: user}
	cfg.CurrentContext = "berth-up"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return writeFile(path, b, 0o600)
}
