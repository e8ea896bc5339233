// Package sbom catalogues the image's root filesystem with syft as a library
// and normalises the SPDX 2.3 and CycloneDX 1.6 documents so that the same
// input always gives the same bytes.
package sbom
