package sbdb

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testSealer(t *testing.T, fill byte) *Sealer {
	t.Helper()
	s, err := NewSealer(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRoundTrip(t *testing.T) {
	s := testSealer(t, 1)
	sealed, err := s.Seal("hunter2 secret", "libera:@alice:example.com")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "hunter2") {
		t.Fatalf("sealed text contains the plaintext: %s", sealed)
	}
	again, _ := s.Seal("hunter2 secret", "libera:@alice:example.com")
	if again == sealed {
		t.Fatal("two seals of the same secret are identical: the nonce is not random")
	}
	plain, err := s.Open(sealed, "libera:@alice:example.com")
	if err != nil || plain != "hunter2 secret" {
		t.Fatalf("Open = %q, %v", plain, err)
	}
}

func TestSealRejectsWrongKeyContextAndTampering(t *testing.T) {
	s := testSealer(t, 1)
	sealed, _ := s.Seal("pw", "login-a")
	if _, err := s.Open(sealed, "login-b"); !errors.Is(err, ErrUnseal) {
		t.Errorf("secret of login-a opened as login-b: %v", err)
	}
	if _, err := testSealer(t, 2).Open(sealed, "login-a"); !errors.Is(err, ErrUnseal) {
		t.Errorf("secret opened with another key: %v", err)
	}
	tampered := sealed[:len(sealed)-2] + "AA"
	if tampered == sealed {
		tampered = sealed[:len(sealed)-2] + "BB"
	}
	if _, err := s.Open(tampered, "login-a"); !errors.Is(err, ErrUnseal) {
		t.Errorf("tampered secret opened: %v", err)
	}
	for _, bad := range []string{"plain", "v1:", "v1:!!!", "v1:AAAA"} {
		if _, err := s.Open(bad, "login-a"); !errors.Is(err, ErrUnseal) {
			t.Errorf("Open(%q) = %v, want ErrUnseal", bad, err)
		}
	}
}

func TestSealEmptyAndKeySize(t *testing.T) {
	s := testSealer(t, 1)
	if sealed, err := s.Seal("", "x"); sealed != "" || err != nil {
		t.Errorf("Seal(\"\") = %q, %v", sealed, err)
	}
	if _, err := NewSealer(make([]byte, 16)); err == nil {
		t.Error("16-byte key accepted")
	}
}
