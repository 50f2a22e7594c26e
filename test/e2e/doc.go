// Package e2e holds sealbridge's end-to-end tests: the real bridge binary between a real homeserver
// (Dendrite), a real IRC network (InspIRCd with Anope services), a real end-to-end-encrypted Matrix
// client (matrix-js-sdk with its Rust crypto, see mxclient) and real databases (SQLite and
// PostgreSQL). They are behind the build tag e2e; `make test` installs the stack and runs them.
package e2e
