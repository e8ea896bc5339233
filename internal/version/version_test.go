package version

import "testing"

// TestStamp: every way of building one commit stamps the same string.
func TestStamp(t *testing.T) {
	const c = "35c4bd2a1b2c3d4e5f60718293a4b5c6d7e8f901"
	for _, x := range []struct {
		name string
		v    Info
		want string
	}{
		{"make build (git describe, no tag)", Info{Version: "35c4bd2", Commit: c}, "commit-35c4bd2a1b2c"},
		{"make build after a tag", Info{Version: "v0.3.0-4-g35c4bd2", Commit: c}, "commit-35c4bd2a1b2c"},
		{"goreleaser snapshot / container image", Info{Version: "0.0.1-devel", Commit: c}, "commit-35c4bd2a1b2c"},
		{"go install @commit", Info{Version: "v0.0.0-20261207044806-35c4bd2a1b2c"}, "commit-35c4bd2a1b2c"},
		{"go install @commit after a tag", Info{Version: "v0.3.1-0.20261207044806-35c4bd2a1b2c"}, "commit-35c4bd2a1b2c"},
		{"a tagged release (goreleaser)", Info{Version: "1.4.0", Commit: c}, "v1.4.0"},
		{"a tagged release (make build, go install)", Info{Version: "v1.4.0", Commit: c}, "v1.4.0"},
		{"a dirty tree", Info{Version: "35c4bd2-dirty", Commit: c}, "commit-35c4bd2a1b2c-dirty"},
		{"go build in a changed checkout", Info{Version: "devel", Commit: c, Modified: true}, "commit-35c4bd2a1b2c-dirty"},
		{"nothing known", Info{Version: "devel"}, "devel"},
	} {
		if got := x.v.Stamp(); got != x.want {
			t.Errorf("%s: %q, want %q", x.name, got, x.want)
		}
	}
}
