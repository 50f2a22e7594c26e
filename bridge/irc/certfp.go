package irc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Client certificates for CertFP: the server identifies a connection by the fingerprint of the TLS
// client certificate it presents, and services log it in to the account that has the fingerprint
// on its list (SASL EXTERNAL, https://ircv3.net/specs/extensions/sasl-3.1). The certificate is
// self-signed: servers compare fingerprints and do not check who signed it.

// clientCertLifetime is long: a certificate that expires would lock its account out, and nothing
// but the fingerprint is checked.
const clientCertLifetime = 20 * 365 * 24 * time.Hour

// NewClientCert makes an ECDSA P-256 key and a self-signed certificate for it, named name. It
// returns the certificate and the key (PKCS #8), both DER.
func NewClientCert(name string) (certDER, keyDER []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(clientCertLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if certDER, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key); err != nil {
		return nil, nil, err
	}
	if keyDER, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
		return nil, nil, err
	}
	return certDER, keyDER, nil
}

// ClientCert turns what NewClientCert made back into a certificate for TLSConfig.Certificates.
func ClientCert(certDER, keyDER []byte) (tls.Certificate, error) {
	if _, err := x509.ParseCertificate(certDER); err != nil {
		return tls.Certificate{}, fmt.Errorf("client certificate: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("client certificate key: %w", err)
	}
	if _, ok := key.(*ecdsa.PrivateKey); !ok {
		return tls.Certificate{}, errors.New("client certificate key: not an ECDSA key")
	}
	return tls.Certificate{Certificate: [][]byte{certDER}, PrivateKey: key}, nil
}

// Fingerprints of a certificate as servers and services write them: lowercase hex of the hash
// of the whole DER certificate. SHA-256 is what InspIRCd, UnrealIRCd, Solanum and ergo use by
// default; SHA-1 is what some older networks (OFTC) still list; SHA-512 some Solanum networks.
type Fingerprints struct {
	SHA256, SHA1, SHA512 string
}

// CertFingerprints hashes a DER certificate.
func CertFingerprints(certDER []byte) Fingerprints {
	s256 := sha256.Sum256(certDER)
	s1 := sha1.Sum(certDER)
	s512 := sha512.Sum512(certDER)
	return Fingerprints{SHA256: hex.EncodeToString(s256[:]), SHA1: hex.EncodeToString(s1[:]), SHA512: hex.EncodeToString(s512[:])}
}
