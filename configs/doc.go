// Package configs reads the v6edge TOML configuration into a validated,
// typed Config.
//
// Decoding is strict: unknown keys, wrong types and out-of-range values are
// all errors, and Parse reports every one of them, not just the first, each
// naming the file, line and key path:
//
//	v6edge.toml:12: lan[0].subnet: must be between 0 and 255 (got 300): nat.internal_prefix fd00:aaaa:bbbb:cc00::/56 holds 256 /64s
//
// Key paths index arrays of tables from zero ("lan[1].ra.mtu"); a single
// [wan] table is "wan", the second of several [[wan]] blocks "wan[1]".
//
// Parsing happens in two steps. The TOML text is decoded into generic maps
// and walked by hand into raw structs whose fields are pointers, so that
// "absent" differs from "zero" (raw.go). Validation then turns the raw
// structs into Config, applying defaults, ranges and the checks that relate
// keys to each other (validate.go). Lines come from a small scanner of the
// source text (lines.go), because the TOML library keeps one position per
// dotted key and cannot tell the first [[lan]] block from the second.
//
// Defaults worth knowing:
//   - the RA timing defaults are those of odhcpd and networkd (200–600 s), and
//     the prefix lifetimes those of RFC 9096 (preferred 2700 s, valid 5400 s);
//   - lan.ra.final_ra is true standalone, and forced false when [ha] is
//     present: a node that stops hands the virtual router over to its peer,
//     so telling hosts "this router is gone" would be wrong. Setting it to
//     true together with [ha] is an error, as is wan.release_on_stop.
//
// The example configs under examples/ are embedded: Default returns the one
// the lab demo uses and Examples returns them all.
package configs
