// Package e2e holds the end-to-end tests: they build the real binaries,
// drive them through their command lines exactly as operators script them,
// and talk to them over HTTP on loopback with independent client libraries.
package e2e
