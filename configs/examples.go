package configs

import (
	"embed"
	"io/fs"
	"path"
)

//go:embed examples/*.toml
var examples embed.FS

// Default returns the text of the config the lab demo uses
// (examples/demo.toml).
func Default() string {
	// Embedded at build time, so it is always there; TestDefault checks it.
	b, _ := examples.ReadFile("examples/demo.toml")
	return string(b)
}

// Examples returns every example config by file name ("minimal.toml",
// "reference.toml", "demo.toml", "ha.toml", "multihome.toml", "routed.toml").
func Examples() map[string]string {
	out := map[string]string{}
	entries, _ := fs.ReadDir(examples, "examples")
	for _, e := range entries {
		b, err := examples.ReadFile(path.Join("examples", e.Name()))
		if err == nil {
			out[e.Name()] = string(b)
		}
	}
	return out
}
