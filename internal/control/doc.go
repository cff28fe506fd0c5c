// Package control is the daemon's operator interface: the status document
// (the JSON contract of SPEC.md), the Unix control socket that serves it and
// accepts renew/release/role requests, and the systemd notify protocol.
//
// The socket speaks one JSON request per connection and answers with one
// JSON response, so a slow or hostile client can never block the daemon: each
// connection has a deadline and runs on its own goroutine, and the handler
// only reads a snapshot the daemon keeps up to date.
package control
