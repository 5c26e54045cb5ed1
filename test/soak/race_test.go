//go:build race

package soak

// raceEnabled: under the race detector (make test) the soak runs a lighter workload, since the detector
// slows the manager and the linearizability check several times over.
const raceEnabled = true
