package refvalues

// Binding is one configuration's entry of bindings.json: which inputs its
// launch values bind (policy.Bindable), which they leave unbound and why.
type Binding struct {
	Configuration string   `json:"configuration"`
	Platform      string   `json:"platform"`
	Binds         []string `json:"binds"`
	// Unbound is always present, empty when everything is bound.
	Unbound []string          `json:"unbound"`
	Why     map[string]string `json:"why,omitempty"`
	// Platform settings the policies check besides the measurements, with
	// the defaults in force when the config set none.
	MinimumTCB string `json:"snp_minimum_tcb,omitempty"`
	XFAM       string `json:"tdx_xfam,omitempty"`
}

// Bindings is bindings.json, written beside every key authority's policies
// and signed with the release.
// (Fields in name order: the file's key order since its first version.)
type Bindings struct {
	AllowUnbound   bool      `json:"allow_unbound"`
	Configurations []Binding `json:"configurations"`
	Release        string    `json:"release"`
}

// ModelArtifact is model/oci.json: the OCI artifact of the encrypted
// weights (encrypt.NewArtifact of model/, the same bytes on every machine).
type ModelArtifact struct {
	// Digest is the artifact's manifest digest, recomputable from model/.
	Digest string `json:"digest"`
	// Pushed is the reference release pushed it to, by digest
	// (registry/repo@sha256:…), when model.oci.ref is set.
	Pushed string `json:"pushed,omitempty"`
}

// Inputs is inputs/inputs.json: every input file and folder the release's
// config names, with its pin and where it comes from.
type Inputs struct {
	Release string  `json:"release"`
	Inputs  []Input `json:"inputs"`
}

// Input is one input of the release.
type Input struct {
	// Key is its place in the config (image.kernel.path); Path as the
	// config writes it, relative to the config's folder.
	Key    string `json:"key"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256,omitempty"`
	Dir    bool   `json:"dir,omitempty"`
	// Origin says how to get it: a Debian package and the file in it, a
	// cvmkit firmware recipe, or that the release engineer supplied it.
	Origin string `json:"origin"`
}
