package verify

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cvmkit/cvmkit/evidence"
	"github.com/cvmkit/cvmkit/measure/gpu"
	"github.com/cvmkit/cvmkit/measure/tdx"
	"github.com/cvmkit/cvmkit/outcome"
)

// EvidenceCheck answers "does this VM run this release, and if not, what differs"
// ('cvmkit check snp|tdx --json'): the evidence's authenticity, the
// configuration it matches, the event-log replay and the GPUs checked with it.
type EvidenceCheck struct {
	Release   string          `json:"release,omitempty"`
	Evidence  string          `json:"evidence"`
	Authentic string          `json:"authentic"`
	Match     *evidence.Match `json:"match"`
	// Replay is the CC event log's replay (TDX, with --event-log).
	Replay *tdx.Replay `json:"replay,omitempty"`
	// GPU is the GPU evidence checked in the same call (--gpu-evidence).
	GPU     *gpu.CheckResult `json:"gpu,omitempty"`
	Verdict string           `json:"verdict"`
	// GPUErr is the first GPU's failure, the exit status when the CPU
	// evidence matches.
	GPUErr error `json:"-"`
}

// Decide sets the verdict and returns the outcome the exit code comes from:
// nil when everything matches; an outcome.PolicyError when only the TCB is
// below the release's minimum; else an *outcome.MismatchError naming the
// first field (or the event log) that differs.
func (res *EvidenceCheck) Decide() error {
	m := res.Match
	gpuNote := ""
	if res.GPU != nil {
		if res.GPU.OK {
			gpuNote = fmt.Sprintf(", with %d GPU(s) matching its GPU reference values", len(res.GPU.GPUs))
		} else {
			gpuNote = "; a GPU does not match its GPU reference values"
		}
	}
	switch {
	case m.OK() && (res.Replay == nil || res.Replay.OK()):
		res.Verdict = "this VM runs " + orRelease(res.Release) + " (" + m.Configuration + ")" + gpuNote
	case m.Configuration == "":
		res.Verdict = "no configuration of " + orRelease(res.Release) + " has this measurement" + gpuNote
	default:
		var bad []string
		for _, f := range m.Fields {
			if !f.OK {
				bad = append(bad, f.Name)
			}
		}
		if res.Replay != nil && !res.Replay.OK() {
			bad = append(bad, "event log")
		}
		res.Verdict = fmt.Sprintf("matches %s by measurement, but %s differ", m.Configuration, strings.Join(bad, ", ")) + gpuNote
	}
	switch {
	case m.OK() && (res.Replay == nil || res.Replay.OK()):
		return res.GPUErr
	case m.PolicyOnly() && (res.Replay == nil || res.Replay.OK()):
		return outcome.PolicyError(errors.New(res.Verdict), "the machine's firmware is older than the release's minimumTCB: update it, or lower the minimum in cvmkit.yaml")
	}
	return firstBad(res)
}

// firstBad is the first differing field (or event) as the error the exit
// code comes from.
func firstBad(res *EvidenceCheck) error {
	for _, f := range res.Match.Fields {
		if !f.OK {
			return &outcome.MismatchError{Subject: res.Evidence, Register: f.Name, Want: f.Want, Got: f.Got}
		}
	}
	return &outcome.MismatchError{Subject: res.Evidence, Register: "event log", Want: "a log that replays to the quote and holds the predicted events", Got: strings.Join(res.Replay.Differences, "; ")}
}

func orRelease(r string) string {
	if r == "" {
		return "the release"
	}
	return "release " + r
}
