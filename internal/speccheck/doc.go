// Package speccheck holds one test: every citation of SPEC.md in the tree
// (`SPEC.md §n` in code, comments, scripts and documents, and `§n` inside
// SPEC.md itself) names a section that SPEC.md has, so that comments and
// docs never point at sections that moved or were never written.
package speccheck
