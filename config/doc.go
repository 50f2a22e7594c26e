// Package config holds the network section of sealbridge's config file: the IRC networks users may log
// in to, how the bridge talks to them (TLS, flood control, reconnect backoff) and the key that seals IRC
// credentials at rest. It gives the typed struct, its defaults, validation with precise errors, and the
// example YAML and upgrader that mautrix's config machinery merges into the full config.
package config
