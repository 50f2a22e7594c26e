// Package sbdb holds what sealbridge stores beside bridgev2's own tables: the metadata types
// bridgev2 keeps as JSON on its rows (logins, portals, ghosts, messages) and the sealing of IRC
// credentials, which never reach the database in the clear.
package sbdb
