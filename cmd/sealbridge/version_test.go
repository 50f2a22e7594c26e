package main

import "testing"

func TestBaseVersionComesFromTheTag(t *testing.T) {
	for tag, want := range map[string]string{
		"v1.2.3":            "1.2.3",
		"1.2.3":             "1.2.3",
		"v1.2.3-4-gabcdef0": "1.2.3",
		"abcdef0":           "0.0.0", // git describe --always without any tag
		"":                  "0.0.0",
		"v1.2":              "0.0.0",
	} {
		if got := baseVersion(tag); got != want {
			t.Errorf("baseVersion(%q) = %q, want %q", tag, got, want)
		}
	}
}
