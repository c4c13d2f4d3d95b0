// Package layout holds no code: its tests check the repository's layout
// rules, the ones that keep the stages apart (see README.md, "Layout").
package layout
