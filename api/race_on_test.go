//go:build race

package api_test

// raceDetector says the test binary runs under -race.
const raceDetector = true
