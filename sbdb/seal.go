package sbdb

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// sealPrefix versions the sealed format so that a future key rotation or algorithm can coexist.
const sealPrefix = "v1:"

// ErrUnseal means a sealed secret could not be opened: wrong key, tampered ciphertext, or a secret
// sealed for another login (the login ID is bound in as additional data).
var ErrUnseal = errors.New("sealed secret cannot be opened with this credentials_key")

// Sealer seals secrets with XChaCha20-Poly1305 under a key that lives in the config file only.
type Sealer struct {
	key []byte
}

// NewSealer takes a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("credentials key must be %d bytes, got %d", chacha20poly1305.KeySize, len(key))
	}
	return &Sealer{key: append([]byte(nil), key...)}, nil
}

// Seal encrypts plaintext bound to context (the login ID), with a fresh random 24-byte nonce.
// The empty string seals to the empty string, so "no password" stays recognisable.
func (s *Sealer) Seal(plaintext, context string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	aead, err := chacha20poly1305.NewX(s.key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err = rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := aead.Seal(nonce, nonce, []byte(plaintext), []byte(context))
	return sealPrefix + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// Open reverses Seal; the context must be the one the secret was sealed with.
func (s *Sealer) Open(sealed, context string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	if len(sealed) < len(sealPrefix) || sealed[:len(sealPrefix)] != sealPrefix {
		return "", fmt.Errorf("%w: unknown format", ErrUnseal)
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed[len(sealPrefix):])
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnseal, err)
	}
	aead, err := chacha20poly1305.NewX(s.key)
	if err != nil {
		return "", err
	}
	if len(raw) < aead.NonceSize()+aead.Overhead() {
		return "", fmt.Errorf("%w: too short", ErrUnseal)
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(context))
	if err != nil {
		return "", ErrUnseal
	}
	return string(plain), nil
}
