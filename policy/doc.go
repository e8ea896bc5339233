// Package policy turns a release's reference values into the inputs key
// authorities and verifiers load: go-sev-guest and go-tdx-guest check
// configurations, Trustee reference values and resource policies, Azure
// Secure Key Release and Intel Trust Authority policies.
//
// It computes nothing itself: the values come from the measure packages
// through the caller, and every output is deterministic (same values, same
// bytes).
package policy
