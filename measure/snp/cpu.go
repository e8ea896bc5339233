package snp

import (
	"fmt"
	"sort"
	"strings"
)

// Signature returns the CPUID Fn0000_0001_EAX value for a family, model and
// stepping (AMD64 APM vol. 3, "CPUID Fn0000_0001_EAX Family, Model,
// Stepping Identifiers"): families above 0xf put the excess in the extended
// family field, models above 0xf the high nibble in the extended model field.
func Signature(family, model, stepping int) (uint32, error) {
	if family < 0 || family > 0xf+0xff || model < 0 || model > 0xff || stepping < 0 || stepping > 0xf {
		return 0, fmt.Errorf("family %d, model %d, stepping %d out of range (family 0..270, model 0..255, stepping 0..15)", family, model, stepping)
	}
	famLo, famHi := family, 0
	if family > 0xf {
		famLo, famHi = 0xf, family-0xf
	}
	return uint32(famHi)<<20 | uint32(model>>4)<<16 | uint32(famLo)<<8 | uint32(model&0xf)<<4 | uint32(stepping), nil
}

// fms is a family/model/stepping triple.
type fms struct{ family, model, stepping int }

// cpuModels are QEMU's AMD EPYC -cpu models (target/i386/cpu.c,
// builtin_x86_defs) with the family, model and stepping each reports. A
// versioned name (EPYC-Milan-v2) reports the same signature as its base.
var cpuModels = map[string]fms{
	"EPYC":       {23, 1, 2},
	"EPYC-IBPB":  {23, 1, 2},
	"EPYC-Rome":  {23, 49, 0},
	"EPYC-Milan": {25, 1, 1},
	"EPYC-Genoa": {25, 17, 0},
	"EPYC-Turin": {26, 0, 0},
}

// cpuVersions lists the -vN aliases QEMU defines for each model.
var cpuVersions = map[string]int{
	"EPYC":       4,
	"EPYC-Rome":  5,
	"EPYC-Milan": 3,
	"EPYC-Genoa": 2,
	"EPYC-Turin": 1,
}

// CPUTypes lists every vCPU type name Signature accepts, sorted.
func CPUTypes() []string {
	var names []string
	for m := range cpuModels {
		names = append(names, m)
		for v := 1; v <= cpuVersions[m]; v++ {
			names = append(names, fmt.Sprintf("%s-v%d", m, v))
		}
	}
	sort.Strings(names)
	return names
}

// CPUSignature returns the vCPU signature QEMU puts in RDX of each VMSA for
// a -cpu model name such as EPYC-v4 or EPYC-Genoa.
func CPUSignature(name string) (uint32, error) {
	base := name
	if i := strings.LastIndex(name, "-v"); i > 0 {
		var v int
		if _, err := fmt.Sscanf(name[i:], "-v%d", &v); err == nil && fmt.Sprintf("-v%d", v) == name[i:] {
			if v >= 1 && v <= cpuVersions[name[:i]] {
				base = name[:i]
			}
		}
	}
	m, ok := cpuModels[base]
	if !ok {
		return 0, fmt.Errorf("unknown vCPU type %q; known types: %s", name, strings.Join(CPUTypes(), ", "))
	}
	return Signature(m.family, m.model, m.stepping)
}
