//go:build !race

package main

// raceDetector says the test binary runs under -race.
const raceDetector = false
