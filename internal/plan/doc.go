// Package plan is the one place v6edge's data flow is written down: it turns
// the configuration and what the daemon has learned (delegated prefixes, the
// HA role, the time) into the desired state of every applier — the NAT
// mapping, each LAN's Router Advertisement contents and router addresses, and
// the routes v6edge owns.
//
// Compute is a pure function. The daemon calls it after every event and hands
// the parts to idempotent appliers, so the kernel always converges on what the
// plan says and nothing is ever patched incrementally.
package plan
